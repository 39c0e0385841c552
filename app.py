"""Entry point for `flask --app app run` (development)."""

from relay import create_app

app = create_app()
