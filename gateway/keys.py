"""Typed keys for the state the application shares with its request handlers."""

from aiohttp import web

from gateway.admission import Admission
from gateway.client_limits import ClientLimits
from gateway.proof_of_work import ProofOfWork
from gateway.settings import Settings
from gateway.torchserve_client import TorchServeClient

SETTINGS = web.AppKey("settings", Settings)
TORCHSERVE = web.AppKey("torchserve", TorchServeClient)
ADMISSION = web.AppKey("admission", Admission)
# None when the setting turns them off.
CLIENT_LIMITS: web.AppKey[ClientLimits | None] = web.AppKey("client_limits")
PROOF_OF_WORK: web.AppKey[ProofOfWork | None] = web.AppKey("proof_of_work")
