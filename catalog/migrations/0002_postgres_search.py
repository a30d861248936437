"""PostgreSQL search machinery: extensions, the search_vector trigger, GIN indexes.

Other databases skip this migration's SQL; search.py falls back to a simpler
search there.
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

FORWARD_SQL = [
    """
    CREATE OR REPLACE FUNCTION catalog_product_search_vector() RETURNS trigger AS $$
    BEGIN
        NEW.search_vector :=
            setweight(to_tsvector('russian', coalesce(NEW.search_title, '')), 'A') ||
            setweight(to_tsvector('russian', coalesce(NEW.search_text, '')), 'B');
        RETURN NEW;
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER catalog_product_search_vector_trigger
    BEFORE INSERT OR UPDATE OF search_title, search_text ON catalog_product
    FOR EACH ROW EXECUTE FUNCTION catalog_product_search_vector()
    """,
    "UPDATE catalog_product SET search_title = search_title",
    "CREATE INDEX catalog_product_search_vector_gin ON catalog_product USING gin (search_vector)",
    "CREATE INDEX catalog_product_search_title_trgm ON catalog_product USING gin (search_title gin_trgm_ops)",
]

BACKWARD_SQL = [
    "DROP INDEX IF EXISTS catalog_product_search_title_trgm",
    "DROP INDEX IF EXISTS catalog_product_search_vector_gin",
    "DROP TRIGGER IF EXISTS catalog_product_search_vector_trigger ON catalog_product",
    "DROP FUNCTION IF EXISTS catalog_product_search_vector()",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    operations = [
        TrigramExtension(),
        migrations.RunPython(_run(FORWARD_SQL), _run(BACKWARD_SQL)),
    ]
