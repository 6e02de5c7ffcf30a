"""`python -m gateway`: serve the gateway with settings from the environment."""

import logging

from aiohttp import web

from gateway.app import create_app
from gateway.settings import Settings

# Method, path, status, bytes sent and seconds taken; no client address, no user agent.
ACCESS_LOG_FORMAT = '"%r" %s %b %Tfs'


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = Settings.from_env()
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        access_log_format=ACCESS_LOG_FORMAT,
        print=logging.getLogger("gateway").info,
        # aiohttp closes a connection that has sent no complete request headers within its
        # keep-alive timeout, counted from the connection's start: this stops slowloris.
        keepalive_timeout=settings.idle_timeout_s,
    )


if __name__ == "__main__":
    main()
