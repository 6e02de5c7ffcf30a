"""Typed keys for the state the application shares with its request handlers."""

from aiohttp import web

from gateway.admission import Admission
from gateway.settings import Settings
from gateway.torchserve_client import TorchServeClient

SETTINGS = web.AppKey("settings", Settings)
TORCHSERVE = web.AppKey("torchserve", TorchServeClient)
ADMISSION = web.AppKey("admission", Admission)
