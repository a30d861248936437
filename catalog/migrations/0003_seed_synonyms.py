"""Common seafood synonyms: colloquial names, other spellings, foreign names, group words.

Staff edit them in admin; this only seeds a new catalog and never overwrites.
"""

from django.db import migrations

SYNONYMS = {
    # colloquial and other spellings
    "шримп": "креветки",
    "шримсы": "креветки",
    "креветосы": "креветки",
    "семга": "лосось",
    "лосось": "семга",
    "салмон": "лосось",
    "гребень": "гребешок",
    "скалоп": "гребешок",
    "сквид": "кальмар",
    "краб": "краба, крабовые",
    "крабы": "краба, крабовые",
    "мидия": "мидии",
    "устрица": "устрицы",
    "лобстер": "омар",
    "лангуст": "лангустины",
    "селедка": "сельдь",
    "селедку": "сельдь",
    "икорка": "икра",
    "королевские креветки": "ваннамей, королевские креветки",
    "тигровые креветки": "креветки тигровые",
    "черная икра": "икра осетровая",
    "красная икра": "икра горбуши, икра кеты, икра нерки, икра кижуча, икра форели",
    # foreign names
    "shrimp": "креветки",
    "shrimps": "креветки",
    "prawn": "креветки",
    "salmon": "лосось",
    "caviar": "икра",
    "crab": "краб",
    "squid": "кальмар",
    "octopus": "осьминог",
    "mussels": "мидии",
    "oysters": "устрицы",
    "scallop": "гребешок",
    "tuna": "тунец",
    "cod": "треска",
    "trout": "форель",
    "lobster": "омар",
    "эби": "креветки",
    "тако": "осьминог",
    "унаги": "угорь",
    # group words
    "морепродукты": "креветки, мидии, кальмар, осьминог, гребешок, морской коктейль",
    "моллюски": "мидии, устрицы, гребешок, кальмар, осьминог, рапана, трубач",
    "ракообразные": "креветки, краб, раки, лангустины, омар",
    "морская рыба": "треска, палтус, скумбрия, сельдь, камбала, минтай",
    "красная рыба": "лосось, семга, форель, кета, горбуша, нерка",
    "белая рыба": "треска, хек, минтай, судак, палтус",
    "копчености": "копчения, копченый",
    "для суши": "икра тобико, имбирь, васаби, соус терияки, набор для роллов",
    "для роллов": "набор для роллов, икра тобико, имбирь, васаби",
}


def seed(apps, schema_editor):
    SearchSynonym = apps.get_model("catalog", "SearchSynonym")
    existing = set(SearchSynonym.objects.values_list("phrase", flat=True))
    SearchSynonym.objects.bulk_create(
        SearchSynonym(phrase=phrase, meaning=meaning) for phrase, meaning in SYNONYMS.items() if phrase not in existing
    )


class Migration(migrations.Migration):
    dependencies = [("catalog", "0002_postgres_search")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
