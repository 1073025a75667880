"""TLS for both listeners from `[tls]`: picows gets an SSLContext, granian its own settings.
Both refuse anything older than TLS 1.2."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from granian.constants import SSLProtocols

from ..errors import ConfigError


def server_ssl_context(config: Any) -> ssl.SSLContext | None:
    tls = config.tls
    if not tls.cert_file:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("tls.cert_file", tls.cert_file,
                          f"a readable PEM certificate whose key is tls.key_file ({exc})") from None
    return context


def granian_tls(config: Any) -> dict[str, Any]:
    tls = config.tls
    if not tls.cert_file:
        return {}
    return {"ssl_cert": Path(tls.cert_file), "ssl_key": Path(tls.key_file), "ssl_protocol_min": SSLProtocols.tls12}
