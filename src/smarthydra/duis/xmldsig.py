"""XMLDSig for DUIS: enveloped ECDSA-SHA256 signatures naming an SMKI XML-signing certificate.

Every DUIS message carries one ``ds:Signature`` as the last child of its root element, in the
form DCC Boxed produces and accepts:

- ``SignedInfo`` canonicalised with exclusive C14N 1.0 and signed with ECDSA-SHA256; the
  ``SignatureValue`` is the raw ``r || s`` (64 bytes), exactly what ``Keystore.sign`` returns;
- one ``Reference`` with ``URI=""`` (the whole document) and the enveloped-signature transform,
  digested with SHA-256. With no explicit canonicalisation transform, XMLDSig §4.3.3.2 turns
  the node-set into octets with inclusive C14N 1.0, which is what DCC Boxed does (checked
  against its signed responses);
- ``KeyInfo/X509Data/X509IssuerSerial`` naming the signer's certificate, never the certificate
  itself: the verifier looks it up in the SMKI repository.

Signing is done here rather than with signxml so that the private key can stay in a
:class:`~smarthydra.crypto.keystore.Keystore` (signxml wants the key object). The tests cross-check
both ways against signxml's own signer and verifier.

Verification is deliberately narrow: one Signature, one Reference to the whole document, known
algorithms only. Anything else is refused with a specific :class:`XmlSignatureError` carrying
the DUIS response code the DCC answers with.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import functools
import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lxml import etree
from lxml.etree import _Element

from smarthydra.clock import Clock
from smarthydra.crypto.keystore import Keystore, KeystoreError, KeyUsage
from smarthydra.crypto.primitives import ecdsa_verify
from smarthydra.duis.codes import RefusalReason, ResponseCode
from smarthydra.eui import Eui64
from smarthydra.pki.certificates import OrganisationCertificate
from smarthydra.pki.hierarchy import CertificateNotFound, CertificateRejected, SmkiRepository
from smarthydra.pki.profile import SmkiRole

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
EXC_C14N_WITH_COMMENTS = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_WITH_COMMENTS = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

# Canonicalisation methods we apply: algorithm -> exclusive?
_C14N_METHODS = {
    EXC_C14N: True,
    EXC_C14N_WITH_COMMENTS: True,
    C14N: False,
    C14N_WITH_COMMENTS: False,
}
_WITH_COMMENTS = {EXC_C14N_WITH_COMMENTS, C14N_WITH_COMMENTS}

XML_SIGNING_ROLES = frozenset({int(SmkiRole.XML_SIGNING_USER), int(SmkiRole.XML_SIGNING_DCC)})


def _ds(name: str) -> str:
    return f"{{{DS_NS}}}{name}"


# --- errors -------------------------------------------------------------------------------------


class XmlSignatureError(Exception):
    """A DUIS message's signature cannot be accepted; ``code`` is the DUIS answer.

    DUIS answers every authentication failure with one code (E1, E21 for a signer who is not
    the originator); ``reason`` (a :class:`~smarthydra.duis.codes.RefusalReason`) says which
    failure it was, for the gateway to pass on in machine-readable form.
    """

    code: ResponseCode = ResponseCode.USER_NOT_AUTHORISED
    reason: RefusalReason = RefusalReason.SIGNATURE_MALFORMED


class MissingSignature(XmlSignatureError):
    """No enveloped ``ds:Signature`` where DUIS requires one."""

    reason = RefusalReason.SIGNATURE_MISSING


class MalformedSignature(XmlSignatureError):
    """The Signature element does not have the structure DUIS uses."""

    reason = RefusalReason.SIGNATURE_MALFORMED


class UnsupportedAlgorithm(XmlSignatureError):
    """An algorithm other than the DUIS ones (ECDSA-SHA256, SHA-256, C14N 1.0)."""

    reason = RefusalReason.SIGNATURE_ALGORITHM


class DigestMismatch(XmlSignatureError):
    """The document was changed after signing, or its digest was never computed (as in the published example requests)."""

    reason = RefusalReason.DIGEST_MISMATCH


class BadSignatureValue(XmlSignatureError):
    """The SignatureValue does not verify with the certificate's key."""

    reason = RefusalReason.SIGNATURE_INVALID


class UnknownCertificate(XmlSignatureError):
    """No certificate with the X509IssuerSerial of the signature."""

    reason = RefusalReason.CERTIFICATE_UNKNOWN


class CertificateNotAcceptable(XmlSignatureError):
    """The certificate exists but is expired, not yet valid, or not an XML-signing certificate."""

    reason = RefusalReason.CERTIFICATE_NOT_ACCEPTABLE


class CertificateRevoked(CertificateNotAcceptable):
    """The certificate is on the SMKI revocation list."""

    reason = RefusalReason.CERTIFICATE_REVOKED


class WrongSigner(XmlSignatureError):
    """The signer is not the party the message says sent it (the RequestID originator)."""

    code = ResponseCode.REQUEST_ID_ORIGINATOR_MISMATCH
    reason = RefusalReason.SIGNER_NOT_ORIGINATOR


# --- certificates --------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuerSerial:
    """What ``X509IssuerSerial`` says: an RFC 4514 issuer name and a decimal serial number."""

    issuer_name: str
    serial: int


_NAME_TYPES = {"2.5.4.3": "CN", "2.5.4.11": "OU", "2.5.4.10": "O", "2.5.4.6": "C"}
_SPLIT_RDN = re.compile(r"(?<!\\)[,+]")


@functools.lru_cache(maxsize=1024)  # the same few issuer names, on every request
def _name_key(name: str) -> tuple[tuple[str, str], ...]:
    """A distinguished name as an order-free key: DCC Boxed writes ``CN=Z1,OU=07`` (RFC 4514
    order) for the issuer that certificate parsers print as ``OU=07, CN=Z1``."""
    pairs = []
    for part in _SPLIT_RDN.split(name):
        if not part.strip():
            continue
        kind, sep, value = part.partition("=")
        if not sep:
            raise MalformedSignature(f"X509IssuerName {name!r} is not a distinguished name")
        kind = kind.strip()
        pairs.append((_NAME_TYPES.get(kind, kind).upper(), value.strip().replace("\\", "")))
    return tuple(sorted(pairs))


def rfc4514_issuer(certificate: OrganisationCertificate) -> str:
    """The issuer as X509IssuerName carries it: RFC 4514, most specific RDN first."""
    return ",".join(part.strip() for part in reversed(certificate.issuer.split(",")))


def issuer_matches(certificate: OrganisationCertificate, issuer_name: str) -> bool:
    return _name_key(certificate.issuer) == _name_key(issuer_name)


CertificateLookup = Callable[[IssuerSerial], OrganisationCertificate]
"""Find and validate the certificate a signature names; raise an :class:`XmlSignatureError`."""


def _acceptable(
    certificate: object, wanted: IssuerSerial, roles: frozenset[int]
) -> OrganisationCertificate:
    if not isinstance(certificate, OrganisationCertificate):
        raise CertificateNotAcceptable(
            f"certificate {wanted.serial} is not an organisation certificate"
        )
    if not issuer_matches(certificate, wanted.issuer_name):
        raise UnknownCertificate(
            f"certificate {wanted.serial} was issued by {certificate.issuer!r}, "
            f"not {wanted.issuer_name!r}"
        )
    if certificate.role not in roles:
        raise CertificateNotAcceptable(
            f"certificate {wanted.serial} has SMKI role {certificate.role:02X}, "
            f"not an XML-signing role ({', '.join(f'{r:02X}' for r in sorted(roles))})"
        )
    if certificate.usage is not KeyUsage.DIGITAL_SIGNATURE:
        raise CertificateNotAcceptable(f"certificate {wanted.serial} is not a signing certificate")
    return certificate


def repository_lookup(
    repository: SmkiRepository, clock: Clock, roles: frozenset[int] = XML_SIGNING_ROLES
) -> CertificateLookup:
    """Look certificates up in the SMKI repository, validating chain, dates and revocation."""

    def lookup(wanted: IssuerSerial) -> OrganisationCertificate:
        try:
            found = repository.by_serial(wanted.serial)
        except CertificateNotFound:
            raise UnknownCertificate(f"no certificate with serial {wanted.serial}") from None
        certificate = _acceptable(found, wanted, roles)
        if repository.is_revoked(certificate.serial):
            raise CertificateRevoked(f"certificate {wanted.serial} is revoked")
        try:
            repository.validate(certificate, clock.now())
        except CertificateRejected as exc:
            raise CertificateNotAcceptable(str(exc)) from None
        return certificate

    return lookup


def static_lookup(
    certificates: Iterable[OrganisationCertificate],
    *,
    at: dt.datetime | None = None,
    roles: frozenset[int] = XML_SIGNING_ROLES,
) -> CertificateLookup:
    """Look certificates up in a fixed set (e.g. DCC Boxed's), checking dates when ``at`` is given.

    No chain is checked: use this only for certificates the caller already trusts.
    """
    by_serial = {c.serial: c for c in certificates}

    def lookup(wanted: IssuerSerial) -> OrganisationCertificate:
        found = by_serial.get(wanted.serial)
        if found is None:
            raise UnknownCertificate(f"no certificate with serial {wanted.serial}")
        certificate = _acceptable(found, wanted, roles)
        if at is not None and not certificate.not_before <= at <= certificate.not_after:
            raise CertificateNotAcceptable(
                f"certificate {wanted.serial} is not valid at {at.isoformat()}"
            )
        return certificate

    return lookup


# --- canonicalisation ------------------------------------------------------------------------------


def _c14n(
    node: _Element | etree._ElementTree,
    *,
    exclusive: bool,
    with_comments: bool = False,
    inclusive_prefixes: list[str] | None = None,
) -> bytes:
    try:
        return bytes(
            etree.tostring(
                node,
                method="c14n",
                exclusive=exclusive,
                with_comments=with_comments,
                inclusive_ns_prefixes=inclusive_prefixes if exclusive else None,
            )
        )
    except etree.C14NError as exc:  # e.g. a relative namespace URI, which C14N 1.0 refuses
        raise MalformedSignature(f"the document cannot be canonicalised: {exc}") from None


def _document_digest(
    signature: _Element, *, exclusive: bool, inclusive_prefixes: list[str] | None
) -> bytes:
    """SHA-256 of the document without ``signature`` (the enveloped-signature transform).

    Works on a copy: taking the Signature out of the live tree and putting it back would let
    lxml re-declare its namespace under another prefix and so change what SignedInfo
    canonicalises to. The Signature's tail text stays in the document, as the transform
    removes only the element's own nodes.
    """
    parent = signature.getparent()
    if parent is None or parent.getparent() is not None:
        raise MalformedSignature("the Signature must be a child of the document element")
    document = copy.deepcopy(parent)
    enveloped = document[parent.index(signature)]
    if enveloped.tail:
        previous = enveloped.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + enveloped.tail
        else:
            document.text = (document.text or "") + enveloped.tail
    document.remove(enveloped)
    # URI="" is the whole document without comments (XMLDSig 4.3.3.2); DUIS messages have
    # nothing outside the document element that canonicalisation would keep.
    octets = _c14n(document, exclusive=exclusive, inclusive_prefixes=inclusive_prefixes)
    return hashlib.sha256(octets).digest()


# --- signing ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class XmlSigner:
    """Signs DUIS documents with a key held in a keystore, naming ``certificate`` in KeyInfo."""

    keystore: Keystore
    label: str
    certificate: OrganisationCertificate

    @property
    def eui(self) -> Eui64:
        return Eui64(self.certificate.eui64)

    def sign(self, root: _Element) -> _Element:
        """Append an enveloped signature to ``root`` (the document element) and return it."""
        signature, signed_info, signature_value = _signature_skeleton(root, self.certificate)
        try:
            raw = self.keystore.sign(self.label, _c14n(signed_info, exclusive=True))
        except KeystoreError:
            root.remove(signature)
            raise
        signature_value.text = base64.b64encode(raw).decode("ascii")
        return root

    def sign_bytes(self, root: _Element) -> bytes:
        """Sign and serialise with an XML declaration, as DUIS messages travel."""
        draft = draft_signature(root, self.certificate)
        return draft.finish(self.keystore.sign(self.label, draft.signed_info))


# The SignatureValue's text while a draft is serialised: not base64 (so it can be found), not
# anything a DUIS document built here contains otherwise.
_SIGNATURE_VALUE_PLACEHOLDER = "--smarthydra-signature-value--"


@dataclass(frozen=True)
class SignatureDraft:
    """A document serialised with its enveloped signature complete but for SignatureValue.

    What the key signs (``signed_info``, the exclusive C14N of SignedInfo) is fixed before the
    signature exists, and SignatureValue lies outside both SignedInfo and the document digest;
    so the document can be built and canonicalised in one process and signed where the key is.
    """

    signed_info: bytes
    head: bytes
    tail: bytes

    def finish(self, signature: bytes) -> bytes:
        """The signed document, given the 64-byte ``r || s`` over :attr:`signed_info`."""
        if len(signature) != 64:
            raise BadSignatureValue(f"an ECDSA P-256 signature is 64 bytes, not {len(signature)}")
        return self.head + base64.b64encode(signature) + self.tail


def draft_signature(root: _Element, certificate: OrganisationCertificate) -> SignatureDraft:
    """Serialise ``root`` with an enveloped signature naming ``certificate``, unsigned yet.

    ``root`` is left as it was."""
    if root.find(_ds("Signature")) is not None:
        raise MalformedSignature("the document is already signed")
    if next(root.iter(etree.Comment, etree.ProcessingInstruction), None) is None:
        return draft_canonical(_c14n(root, exclusive=False, inclusive_prefixes=None), certificate)
    # Comments must travel (a refusal states its reason in one) but the whole-document
    # Reference leaves them out of the digest: build the signature in the tree instead.
    signature, signed_info, signature_value = _signature_skeleton(root, certificate)
    try:
        signed_octets = _c14n(signed_info, exclusive=True)
        signature_value.text = _SIGNATURE_VALUE_PLACEHOLDER
        document = bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    finally:
        root.remove(signature)
    head, found, tail = document.partition(_SIGNATURE_VALUE_PLACEHOLDER.encode("ascii"))
    if not found or _SIGNATURE_VALUE_PLACEHOLDER.encode("ascii") in tail:
        raise MalformedSignature("the document to sign contains the signature placeholder")
    return SignatureDraft(signed_octets, head, tail)


# Exclusive C14N of SignedInfo as _signature_skeleton builds it: it renders only the ds
# namespace (the one it uses) whatever the document declares, so it is fixed but for the digest.
_SIGNED_INFO_HEAD = (
    f'<ds:SignedInfo xmlns:ds="{DS_NS}">'
    f'<ds:CanonicalizationMethod Algorithm="{EXC_C14N}"></ds:CanonicalizationMethod>'
    f'<ds:SignatureMethod Algorithm="{ECDSA_SHA256}"></ds:SignatureMethod>'
    '<ds:Reference URI=""><ds:Transforms>'
    f'<ds:Transform Algorithm="{ENVELOPED}"></ds:Transform></ds:Transforms>'
    f'<ds:DigestMethod Algorithm="{SHA256}"></ds:DigestMethod><ds:DigestValue>'
).encode("ascii")
_SIGNED_INFO_TAIL = b"</ds:DigestValue></ds:Reference></ds:SignedInfo>"
_XML_DECLARATION = b"<?xml version='1.0' encoding='UTF-8'?>\n"


def _xml_text(text: str) -> bytes:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").encode("utf-8")


def draft_canonical(canonical: bytes, certificate: OrganisationCertificate) -> SignatureDraft:
    """The draft for a document given as its inclusive C14N octets (of a tree without
    comments or processing instructions, which the whole-document Reference would drop).

    Those octets give the document digest and are also the document as sent: canonical XML
    is well-formed, and a verifier re-canonicalising it after the enveloped transform gets
    the same octets back (C14N is idempotent). The Signature goes in just before the root's
    end tag, declaring ds itself, so SignedInfo's exclusive C14N is the fixed template above
    with the digest filled in; no elements are built.
    """
    digest = base64.b64encode(hashlib.sha256(canonical).digest())
    signed_info = _SIGNED_INFO_HEAD + digest + _SIGNED_INFO_TAIL
    end_tag = canonical.rindex(b"</")  # C14N always writes an end tag, never <a/>
    head = b"".join(
        (
            _XML_DECLARATION,
            canonical[:end_tag],
            f'<ds:Signature xmlns:ds="{DS_NS}">'.encode("ascii"),
            signed_info.replace(f' xmlns:ds="{DS_NS}"'.encode("ascii"), b"", 1),
            b"<ds:SignatureValue>",
        )
    )
    tail = b"".join(
        (
            b"</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509IssuerSerial>",
            b"<ds:X509IssuerName>",
            _xml_text(rfc4514_issuer(certificate)),
            b"</ds:X509IssuerName><ds:X509SerialNumber>",
            str(certificate.serial).encode("ascii"),
            b"</ds:X509SerialNumber></ds:X509IssuerSerial></ds:X509Data></ds:KeyInfo>",
            b"</ds:Signature>",
            canonical[end_tag:],
        )
    )
    return SignatureDraft(signed_info, head, tail)


def _signature_skeleton(
    root: _Element, certificate: OrganisationCertificate
) -> tuple[_Element, _Element, _Element]:
    """Append ds:Signature with SignedInfo (digest filled in) and KeyInfo to ``root``; return
    (Signature, SignedInfo, the empty SignatureValue)."""
    if root.find(_ds("Signature")) is not None:
        raise MalformedSignature("the document is already signed")
    # The enveloped-signature transform removes exactly the Signature appended below (it has
    # no tail text and declares its namespace itself), so the digest of the document before it
    # is there is the digest a verifier computes; no copy of the tree is needed.
    digest = hashlib.sha256(_c14n(root, exclusive=False, inclusive_prefixes=None)).digest()
    signature = etree.SubElement(root, _ds("Signature"), nsmap={"ds": DS_NS})
    signed_info = etree.SubElement(signature, _ds("SignedInfo"))
    etree.SubElement(signed_info, _ds("CanonicalizationMethod"), Algorithm=EXC_C14N)
    etree.SubElement(signed_info, _ds("SignatureMethod"), Algorithm=ECDSA_SHA256)
    reference = etree.SubElement(signed_info, _ds("Reference"), URI="")
    transforms = etree.SubElement(reference, _ds("Transforms"))
    etree.SubElement(transforms, _ds("Transform"), Algorithm=ENVELOPED)
    etree.SubElement(reference, _ds("DigestMethod"), Algorithm=SHA256)
    etree.SubElement(reference, _ds("DigestValue")).text = base64.b64encode(digest).decode("ascii")
    signature_value = etree.SubElement(signature, _ds("SignatureValue"))
    key_info = etree.SubElement(signature, _ds("KeyInfo"))
    issuer_serial = etree.SubElement(
        etree.SubElement(key_info, _ds("X509Data")), _ds("X509IssuerSerial")
    )
    etree.SubElement(issuer_serial, _ds("X509IssuerName")).text = rfc4514_issuer(certificate)
    etree.SubElement(issuer_serial, _ds("X509SerialNumber")).text = str(certificate.serial)
    return signature, signed_info, signature_value


# --- verification -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifiedSignature:
    """A signature that verified: who signed (certificate and its EUI-64)."""

    certificate: OrganisationCertificate
    # what KeyInfo named, for callers that pass it on (None when built without it)
    issuer_serial: IssuerSerial | None = None

    @property
    def signer(self) -> Eui64:
        return Eui64(self.certificate.eui64)


def _one(parent: _Element, name: str) -> _Element:
    # a plain loop over the few children: findall would go through ElementPath every time
    tag = _ds(name)
    found = [child for child in parent if child.tag == tag]
    if len(found) != 1:
        raise MalformedSignature(
            f"{parent.tag.split('}')[-1]} must have exactly one {name}, has {len(found)}"
        )
    return found[0]


def _algorithm(element: _Element) -> str:
    algorithm = element.get("Algorithm")
    if not algorithm:
        raise MalformedSignature(f"{element.tag.split('}')[-1]} has no Algorithm")
    return str(algorithm)


def _prefix_list(element: _Element) -> list[str] | None:
    inclusive = element.find(f"{{{EXC_C14N}}}InclusiveNamespaces")
    if inclusive is None:
        return None
    return [p for p in (inclusive.get("PrefixList") or "").split() if p != "#default"]


def _base64(element: _Element, what: str) -> bytes:
    text = "".join((element.text or "").split())  # DCC Boxed wraps with &#13; and newlines
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedSignature(f"{what} is not base64") from None


def find_signature(root: _Element) -> _Element:
    """The enveloped Signature: the only one in the document, a child of the root."""
    signatures = list(root.iter(_ds("Signature")))
    if not signatures:
        raise MissingSignature("the message has no ds:Signature")
    if len(signatures) > 1:
        raise MalformedSignature(
            f"the message has {len(signatures)} ds:Signature elements, DUIS allows one"
        )
    signature = signatures[0]
    if signature.getparent() is not root:
        raise MalformedSignature("the ds:Signature must be a child of the root element")
    return signature


def signature_issuer_serial(signature: _Element) -> IssuerSerial:
    key_info = _one(signature, "KeyInfo")
    issuer_serial = _one(_one(key_info, "X509Data"), "X509IssuerSerial")
    name = _one(issuer_serial, "X509IssuerName").text or ""
    serial_text = (_one(issuer_serial, "X509SerialNumber").text or "").strip()
    if not (serial_text.isascii() and serial_text.isdigit()):
        raise MalformedSignature(f"X509SerialNumber {serial_text!r} is not a decimal integer")
    return IssuerSerial(name.strip(), int(serial_text))


def verify_enveloped(root: _Element, lookup: CertificateLookup) -> VerifiedSignature:
    """Check the enveloped signature of the document whose element is ``root``.

    Raises a specific :class:`XmlSignatureError`; never returns for a bad signature.
    """
    signature = find_signature(root)
    signed_info = _one(signature, "SignedInfo")
    c14n_method = _algorithm(_one(signed_info, "CanonicalizationMethod"))
    if c14n_method not in _C14N_METHODS:
        raise UnsupportedAlgorithm(f"canonicalisation {c14n_method} is not supported")
    method = _algorithm(_one(signed_info, "SignatureMethod"))
    if method != ECDSA_SHA256:
        raise UnsupportedAlgorithm(f"signature method {method} is not ecdsa-sha256")
    reference = _one(signed_info, "Reference")
    if reference.get("URI") != "":
        raise MalformedSignature(
            f'the Reference must be to the whole document (URI=""), not {reference.get("URI")!r}'
        )
    enveloped = False
    exclusive, prefixes = False, None  # the default node-set -> octets step is inclusive C14N
    transforms = next(reference.iterchildren(_ds("Transforms")), None)
    for transform in [] if transforms is None else transforms.iterchildren(_ds("Transform")):
        algorithm = _algorithm(transform)
        if algorithm == ENVELOPED:
            enveloped = True
        elif algorithm in _C14N_METHODS:
            exclusive, prefixes = _C14N_METHODS[algorithm], _prefix_list(transform)
        else:
            raise UnsupportedAlgorithm(f"transform {algorithm} is not supported")
    if not enveloped:
        raise MalformedSignature("the Reference lacks the enveloped-signature transform")
    digest_method = _algorithm(_one(reference, "DigestMethod"))
    if digest_method != SHA256:
        raise UnsupportedAlgorithm(f"digest method {digest_method} is not SHA-256")
    claimed_digest = _base64(_one(reference, "DigestValue"), "DigestValue")
    signature_value = _base64(_one(signature, "SignatureValue"), "SignatureValue")
    wanted = signature_issuer_serial(signature)

    # Cheap structural checks first, then the certificate, then the two hashes and ECDSA.
    certificate = lookup(wanted)
    digest = _document_digest(signature, exclusive=exclusive, inclusive_prefixes=prefixes)
    if digest != claimed_digest:
        raise DigestMismatch(
            "the document digest does not match: the message was altered after signing"
        )
    if len(signature_value) != 64:
        raise BadSignatureValue(
            f"SignatureValue is {len(signature_value)} bytes, ECDSA P-256 r||s is 64"
        )
    signed_octets = _c14n(
        signed_info,
        exclusive=_C14N_METHODS[c14n_method],
        with_comments=c14n_method in _WITH_COMMENTS,
        inclusive_prefixes=_prefix_list(_one(signed_info, "CanonicalizationMethod")),
    )
    if not ecdsa_verify(certificate.public_key, signed_octets, signature_value):
        raise BadSignatureValue(
            f"the signature does not verify with certificate {certificate.serial}"
        )
    return VerifiedSignature(certificate, wanted)


def check_signer(verified: VerifiedSignature, expected: Eui64) -> None:
    """DUIS: the XML-signing certificate must be the RequestID originator's."""
    if verified.signer != expected:
        raise WrongSigner(
            f"signed by {verified.signer.hyphenated}, but the RequestID originator is {expected.hyphenated}"
        )
