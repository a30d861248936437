# Django's own Russian formats, with the month in the genitive where a day goes before it:
# admin's date links read «2 декабря», not «2 Декабрь».
MONTH_DAY_FORMAT = "j E"
DATE_FORMAT = "j E Y г."
