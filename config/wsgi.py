"""The WSGI callable gunicorn serves: ``config.wsgi:application``."""

import os

from django.core.wsgi import get_wsgi_application
from django.urls import resolve

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

# Django imports the URLconf, and with it every view and what they import, on
# the first request a process serves: about 150 ms that the first Bitrix24
# event after each deploy would wait. A worker pays it while it starts instead.
resolve("/health")
