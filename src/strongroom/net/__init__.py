"""HTTP plumbing shared by every layer that talks to a server: one client stack, aiohttp.

lightkube keeps building Kubernetes requests (it speaks httpx2) but sends them through
`kube_client`'s aiohttp transport: the operator is CPU-bound on request handling, and aiohttp
spends about a fifth of httpcore's CPU per request (bench/secretmappings.py shows the difference).
"""

from strongroom.net.transport import AiohttpTransport, environment_proxy, kube_client, kube_transport

__all__ = ["AiohttpTransport", "environment_proxy", "kube_client", "kube_transport"]
