"""Loa's own HTTP/1.1 for the HTTP channels and their simulators.

``message`` and ``codec`` (messages from and to bytes, sans I/O); ``connection`` and ``client``
(:class:`~adapters.http.client.HttpClient`: a pool of keep-alive connections over asyncio
protocols, TLS for ``https``); ``server`` (:class:`~adapters.http.server.HttpServer`: a small
keep-alive server with a route table, for the simulators).
"""
