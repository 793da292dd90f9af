"""Loa's own HTTP/1.1 for the HTTP channels and their simulators: every outgoing HTTP call of
the product goes through :class:`~adapters.http.client.HttpClient`.

``message`` and ``codec`` (messages from and to bytes, sans I/O); ``url``, ``connection`` and
``client`` (:class:`~adapters.http.client.HttpClient`: a pool of keep-alive connections over
asyncio protocols, TLS for ``https``); ``proxy`` (which HTTP proxy carries a request, from the
environment or the configuration, and ``CONNECT`` tunnels); ``server``
(:class:`~adapters.http.server.HttpServer`: a small keep-alive server with a route table, for
the simulators).
"""
