from django import forms
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from catalog.models import Product

# The whole file is read into memory and parsed in one request; 20 MB is
# some hundred thousand rows, well above a store's catalog.
CSV_MAX_SIZE = 20 * 1024 * 1024


class CsvImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "Columns: sku and title (required), category, price, quantity, description, url, image. "
            "UTF-8 or Windows-1251, with ; or , between cells. "
            "Products with a known SKU are updated; empty cells keep the stored values."
        ),
    )

    def clean_file(self):
        file = self.cleaned_data["file"]
        if file.size > CSV_MAX_SIZE:
            raise forms.ValidationError(
                _("The file is %(size)s; files up to %(limit)s can be imported."),
                code="too_large",
                params={"size": filesizeformat(file.size), "limit": filesizeformat(CSV_MAX_SIZE)},
            )
        return file


CURRENCIES = [
    ("RUB", _("RUB, Russian rouble")),
    ("USD", _("USD, US dollar")),
    ("EUR", _("EUR, euro")),
    ("KZT", _("KZT, Kazakh tenge")),
    ("BYN", _("BYN, Belarusian rouble")),
]


class CharacteristicsWidget(forms.Widget):
    """Characteristics as a table of name and value inputs, with a few empty rows to add more."""

    extra_rows = 3

    def render(self, name, value, attrs=None, renderer=None):
        field_id = (attrs or {}).get("id", f"id_{name}")
        rows = list((value or {}).items()) + [("", "")] * self.extra_rows
        # The field's label points at the first name input.
        cells = format_html_join(
            "",
            '<tr><td><input type="text" name="{0}-key" value="{1}" aria-label="{3}"{5}></td>'
            '<td><input type="text" name="{0}-value" value="{2}" class="vTextField" aria-label="{4}"></td></tr>',
            (
                (
                    name,
                    key,
                    "" if val is None else val,
                    _("characteristic"),
                    _("value"),
                    format_html(' id="{}"', field_id) if i == 0 else "",
                )
                for i, (key, val) in enumerate(rows)
            ),
        )
        return format_html(
            '<table class="characteristics-table" id="{}_table"><thead><tr><th>{}</th><th>{}</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            field_id,
            _("characteristic"),
            _("value"),
            cells,
        )

    def value_from_datadict(self, data, files, name):
        keys, values = data.getlist(f"{name}-key"), data.getlist(f"{name}-value")
        # A row whose name is cleared is removed.
        return {key.strip(): value.strip() for key, value in zip(keys, values, strict=False) if key.strip()}

    def value_omitted_from_data(self, data, files, name):
        return f"{name}-key" not in data


class CharacteristicsField(forms.Field):
    widget = CharacteristicsWidget

    def to_python(self, value):
        return value if isinstance(value, dict) else {}

    def has_changed(self, initial, data):
        # Imported values may be numbers; the inputs give them back as text.
        as_text = {str(k): "" if v is None else str(v) for k, v in (initial or {}).items()}
        return as_text != (data or {})


class ProductAdminForm(forms.ModelForm):
    """The product page: currency from a list, characteristics as a table."""

    characteristics = CharacteristicsField(label=capfirst(_("characteristics")), required=False)

    class Meta:
        model = Product
        fields = ["currency", "characteristics"]  # the admin's fieldsets add the rest
        widgets = {"currency": forms.Select}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = list(CURRENCIES)
        current = self.instance.currency if self.instance.pk else None
        if current and current not in dict(choices):
            choices.append((current, current))  # an imported code outside the list stays as it is
        self.fields["currency"].widget.choices = choices
