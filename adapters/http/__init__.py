"""Loa's own HTTP/1.1 for the HTTP channels and their simulators.

``codec`` (messages from and to bytes, sans I/O), ``client`` (:class:`HttpClient`: a pool of
keep-alive connections over asyncio protocols, TLS for ``https``), ``server``
(:class:`HttpServer`: a small keep-alive server with a route table, for the simulators).
"""
