"""The client vanishes without a close frame: the transport is aborted
mid-connection. argv: the URL of an echo route."""

from wsclient import connect, log, roundtrip, run


async def main(url):
    ws = await connect(url)
    await roundtrip(ws, "hello", "before vanishing")
    ws.transport.abort()
    log("transport aborted without a close frame")


run(main)
