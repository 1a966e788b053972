"""The ASGI application for uvicorn: ``uvicorn app.asgi:app``."""

from app.heap import settle_startup_heap
from app.main import create_app

app = create_app()
settle_startup_heap()
