"""Settings of the Django sample: an app whose sessions live in sessiond.

SESSIOND_URL, SESSIOND_APP_KEY and SESSIOND_ADMIN_KEY come from the environment.
"""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "sample-only-not-secret")
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "sample_views"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ.get("DJANGO_DB", ":memory:")}}
USE_TZ = True
MIDDLEWARE = [
    "sessiond_client.django.SessionMiddleware",  # in place of django.contrib.sessions' own
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]

# The five lines (with MIDDLEWARE above).
SESSION_ENGINE = "sessiond_client.django"
SESSION_COOKIE_NAME = "__Host-session"
SESSIOND = {
    "URL": os.environ.get("SESSIOND_URL", "http://127.0.0.1:8080"),
    "APP_KEY": os.environ["SESSIOND_APP_KEY"],
    "ADMIN_KEY": os.environ["SESSIOND_ADMIN_KEY"],
}
