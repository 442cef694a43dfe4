"""Python clients for the Tessera REST API (httpx), sync and async, with typed results."""

from tessera.client._calls import Call
from tessera.client._client import AsyncTesseraClient, TesseraClient
from tessera.client._transport import error_from_response

__all__ = ["AsyncTesseraClient", "Call", "TesseraClient", "error_from_response"]
