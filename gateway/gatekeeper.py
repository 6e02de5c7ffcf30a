"""What an upload passes before its body is read, in order: the client's own limits (429),
its proof of work (403), then a slot in the gateway (503)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from aiohttp import hdrs, web

from gateway.client_address import client_key
from gateway.keys import ADMISSION, CLIENT_LIMITS, PROOF_OF_WORK, SETTINGS
from gateway.proof_of_work import HEADER


@asynccontextmanager
async def admitted(request: web.Request) -> AsyncIterator[None]:
    """Hold the client's slot and a gateway slot for the ``with`` block; TooManyUploads,
    ProofOfWorkRejected or GatewayBusy when the upload may not be read."""
    app = request.app
    async with AsyncExitStack() as held:
        limits = app[CLIENT_LIMITS]
        if limits is not None:
            forwarded_for = request.headers.get(hdrs.X_FORWARDED_FOR)
            client = client_key(request.remote, forwarded_for, app[SETTINGS].trusted_proxies)
            await held.enter_async_context(limits.upload(client))
        proof_of_work = app[PROOF_OF_WORK]
        if proof_of_work is not None:
            await proof_of_work.spend(request.headers.get(HEADER))
        held.enter_context(app[ADMISSION].slot())
        yield
