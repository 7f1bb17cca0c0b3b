"""The WSGI entry point: ``gunicorn wsgi:app`` and ``flask --app wsgi ...``."""

import os

from dotenv import load_dotenv

from core import create_app

if os.environ.get("ZUIMEI_ENV", "development") != "production":
    load_dotenv()  # development convenience; production takes its settings from the environment
app = create_app()
