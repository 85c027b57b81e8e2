"""The HTTP gateway (aiohttp): thin handlers over :mod:`aegisflow.service`."""
