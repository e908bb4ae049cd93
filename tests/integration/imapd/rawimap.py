"""A minimal raw IMAP client for protocol probes: sends exact bytes, reads
until the tagged answer, understands literals in responses."""
import re
import socket
import ssl

LIT = re.compile(rb"\{(\d+)\}\r\n$")


class Raw:
    def __init__(self, port, host="127.0.0.1", source=None, tls_cert=None, timeout=15):
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        if tls_cert:
            ctx = ssl.create_default_context(cafile=str(tls_cert))
            ctx.check_hostname = False
            self.sock = ctx.wrap_socket(self.sock)
        self.buf = b""
        self.n = 0
        self.greeting = self.line()

    def starttls(self, cert):
        ctx = ssl.create_default_context(cafile=str(cert))
        ctx.check_hostname = False
        self.sock = ctx.wrap_socket(self.sock)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def line(self):
        """One response line, with any literals it announces appended."""
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                self._fill()
            i = self.buf.index(b"\r\n") + 2
            part, self.buf = self.buf[:i], self.buf[i:]
            out += part
            m = LIT.search(part)
            if not m:
                return out
            n = int(m.group(1))
            while len(self.buf) < n:
                self._fill()
            out += self.buf[:n]
            self.buf = self.buf[n:]

    def cmd(self, text, tag=None):
        """Sends 'TAG text' and returns (untagged lines, tagged line)."""
        self.n += 1
        tag = tag or f"t{self.n}"
        if isinstance(text, str):
            text = text.encode()
        self.send(tag.encode() + b" " + text + b"\r\n")
        return self.until(tag)

    def until(self, tag):
        lines = []
        while True:
            ln = self.line()
            if ln.startswith(tag.encode() + b" "):
                return lines, ln
            lines.append(ln)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
