"""Subprotocol negotiation. argv: the URL of an echo route speaking
`gyre.v2` and `gyre.v1`, in that order of preference."""

from wsclient import connect, log, roundtrip, run


async def main(url):
    async with connect(url, subprotocols=["other", "gyre.v1", "gyre.v2"]) as ws:
        log(f"offered other, gyre.v1, gyre.v2: got {ws.subprotocol!r}")
        assert ws.subprotocol == "gyre.v2", f"subprotocol {ws.subprotocol!r}, expected 'gyre.v2'"
        await roundtrip(ws, "hi", "with a subprotocol")
    async with connect(url, subprotocols=["gyre.v1"]) as ws:
        log(f"offered gyre.v1: got {ws.subprotocol!r}")
        assert ws.subprotocol == "gyre.v1", f"subprotocol {ws.subprotocol!r}, expected 'gyre.v1'"
    async with connect(url) as ws:
        log(f"offered none: got {ws.subprotocol!r}")
        assert ws.subprotocol is None, f"subprotocol {ws.subprotocol!r}, expected none"


run(main)
