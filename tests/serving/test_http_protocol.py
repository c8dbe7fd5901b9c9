"""One socket write per response: the writes of one event-loop step reach the socket together, in
order, and nothing is lost when the connection closes; real servers answer as before."""

from __future__ import annotations

import asyncio
import json
import socket

from segue.serving.app import create_app
from segue.serving.http_protocol import CoalescingTransport

from .support import PackageLoader, settings_with


async def _loopback_pair() -> tuple[asyncio.Transport, asyncio.StreamReader, asyncio.Server]:
    """A real loopback connection: the client's transport and the server side's reader."""
    accepted: asyncio.Queue[asyncio.StreamReader] = asyncio.Queue()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put(reader)

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport, _ = await asyncio.get_running_loop().create_connection(
        asyncio.Protocol, "127.0.0.1", port
    )
    return transport, await accepted.get(), server


def test_writes_of_one_step_reach_the_socket_as_one_write_in_order() -> None:
    async def scenario() -> None:
        transport, peer, server = await _loopback_pair()
        sent: list[bytes] = []
        write = transport.write
        transport.write = lambda data: (sent.append(bytes(data)), write(data))  # type: ignore[method-assign]
        coalescing = CoalescingTransport(transport, asyncio.get_running_loop())
        coalescing.write(b"HTTP/1.1 200 OK\r\n\r\n")
        coalescing.write(b'{"items":[]}')
        assert sent == []  # held until the step ends
        await asyncio.sleep(0)
        assert sent == [b'HTTP/1.1 200 OK\r\n\r\n{"items":[]}']
        coalescing.write(b"last")
        coalescing.close()  # flushes first: the peer reads everything, then the end
        assert await peer.read() == b'HTTP/1.1 200 OK\r\n\r\n{"items":[]}last'
        assert sent[-1] == b"last"
        server.close()
        await server.wait_closed()

    asyncio.run(scenario())


def test_pipelined_requests_and_connection_close_are_answered_whole(serve, packages) -> None:
    url = serve(create_app(settings_with(), PackageLoader(packages)))
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"history": ["100", "102"], "k": 3}).encode()
    request = (
        b"POST /v1/users/recommendations HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n%s\r\n%s"
    )
    with socket.create_connection((host, int(port)), timeout=10) as client:
        # Two requests in one segment; the second asks to close the connection after it.
        client.sendall(
            request % (len(body), b"", body) + request % (len(body), b"connection: close\r\n", body)
        )
        received = b""
        while chunk := client.recv(65536):  # the server closes after the second answer
            received += chunk
    answers = received.split(b"HTTP/1.1 ")[1:]
    assert [answer.split(b"\r\n", 1)[0] for answer in answers] == [b"200 OK", b"200 OK"]
    lists = [json.loads(answer.split(b"\r\n\r\n", 1)[1]) for answer in answers]
    assert [len(listed["items"]) for listed in lists] == [3, 3]
    assert lists[0]["items"] == lists[1]["items"]
