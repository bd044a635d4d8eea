"""The fields a technician needs from an X.509 certificate (DER), and whether
it covers a host name: a small DER reader, as the standard library has no
public certificate parser (ssl.getpeercert() decodes only verified ones).

    parse_certificate(der) -> {"subject", "subject_cn", "issuer", "issuer_cn",
        "san_dns", "san_ip", "names", "not_before", "not_after", "days_left",
        "self_signed"}; ValueError, IndexError or UnicodeError when malformed
    hostname_matches(cert, host)   SAN DNS/IP; the CN only without a SAN
"""

import datetime
import ipaddress

_OID_NAMES = {"2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST",
              "2.5.4.10": "O", "2.5.4.11": "OU"}
_OID_SAN = "2.5.29.17"


def _der_item(data, pos):
    """(tag, content, next position) of the DER element at pos."""
    if pos + 2 > len(data):
        raise ValueError("truncated DER")
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        if not 1 <= n <= 4 or pos + n > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos:pos + n], "big")
        pos += n
    end = pos + length
    if end > len(data):
        raise ValueError("truncated DER")
    return tag, data[pos:end], end


def _der_children(content):
    items, pos = [], 0
    while pos < len(content):
        tag, value, pos = _der_item(content, pos)
        items.append((tag, value))
    return items


def _oid(content):
    first = content[0]
    parts = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    n = 0
    for b in content[1:]:
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            parts.append(n)
            n = 0
    return ".".join(str(p) for p in parts)


def _der_string(tag, content):
    if tag == 0x1E:
        return content.decode("utf-16-be", "replace")
    if tag == 0x1C:
        return content.decode("utf-32-be", "replace")
    if tag == 0x14:
        return content.decode("latin-1")
    return content.decode("utf-8", "replace")


def _name(content):
    """[(short name or OID, value)] of an X.501 Name."""
    out = []
    for set_tag, rdn in _der_children(content):
        for seq_tag, atv in _der_children(rdn):
            parts = _der_children(atv)
            if len(parts) >= 2 and parts[0][0] == 0x06:
                oid = _oid(parts[0][1])
                out.append((_OID_NAMES.get(oid, oid), _der_string(*parts[1])))
    return out


def _time(tag, content):
    text = content.decode("ascii").rstrip("Z")
    text = text.split(".")[0]
    if tag == 0x17:   # UTCTime YYMMDDHHMM[SS]
        year = int(text[:2])
        text = ("20" if year < 50 else "19") + text
    fmt = "%Y%m%d%H%M%S" if len(text) >= 14 else "%Y%m%d%H%M"
    return datetime.datetime.strptime(text[:14], fmt).replace(tzinfo=datetime.timezone.utc)


def parse_certificate(der):
    """The fields a technician needs from a DER certificate."""
    cert = _der_children(_der_item(der, 0)[1])
    tbs = _der_children(cert[0][1])
    i = 1 if tbs[0][0] == 0xA0 else 0   # [0] version
    issuer_raw = tbs[i + 2][1]
    validity = _der_children(tbs[i + 3][1])
    subject_raw = tbs[i + 4][1]
    subject, issuer = _name(subject_raw), _name(issuer_raw)
    dns, ips = [], []
    for tag, content in tbs[i + 6:]:
        if tag != 0xA3:   # [3] extensions
            continue
        for _seq, ext in _der_children(_der_children(content)[0][1]):
            parts = _der_children(ext)
            if _oid(parts[0][1]) != _OID_SAN:
                continue
            value = parts[-1][1]     # OCTET STRING holding GeneralNames
            for gtag, gvalue in _der_children(_der_item(value, 0)[1]):
                if gtag == 0x82:
                    dns.append(gvalue.decode("ascii", "replace"))
                elif gtag == 0x87:
                    ips.append(str(ipaddress.ip_address(gvalue)))
    not_before = _time(*validity[0])
    not_after = _time(*validity[1])
    now = datetime.datetime.now(datetime.timezone.utc)

    def first(name, key):
        return next((v for k, v in name if k == key), None)

    def text(name):
        return ", ".join("%s=%s" % kv for kv in name) or "(empty)"

    return {
        "subject": text(subject), "subject_cn": first(subject, "CN"),
        "issuer": text(issuer), "issuer_cn": first(issuer, "CN"),
        "san_dns": dns, "san_ip": ips,
        "names": ["DNS:" + d for d in dns] + ["IP:" + a for a in ips] or
                 (["CN:" + first(subject, "CN")] if first(subject, "CN") else []),
        "not_before": not_before.strftime("%Y-%m-%d %H:%M UTC"),
        "not_after": not_after.strftime("%Y-%m-%d %H:%M UTC"),
        "days_left": int((not_after - now).total_seconds() // 86400),
        "self_signed": subject_raw == issuer_raw,
    }


def hostname_matches(cert, host):
    """Does the certificate cover host (SAN DNS/IP; the CN only without a SAN)?"""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None:
        return any(ipaddress.ip_address(a) == ip for a in cert["san_ip"])
    names = cert["san_dns"] or ([cert["subject_cn"]] if cert["subject_cn"] and not
                                cert["san_ip"] else [])
    host = host.lower().rstrip(".")
    for name in names:
        name = name.lower().rstrip(".")
        if name == host:
            return True
        if name.startswith("*.") and "." in host:
            label, rest = host.split(".", 1)
            if label and rest == name[2:]:
                return True
    return False
