from django import forms
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

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
