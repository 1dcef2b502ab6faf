"""Inputs the fuzzers in tests/fuzz found escaping with an undocumented exception."""

from __future__ import annotations

from typing import cast

import pytest
from lxml import etree

from smarthydra.duis.request import RequestId, RequestIdError
from smarthydra.duis.xmldsig import (
    C14N,
    DS_NS,
    ECDSA_SHA256,
    ENVELOPED,
    SHA256,
    IssuerSerial,
    MalformedSignature,
    verify_enveloped,
)
from smarthydra.pki.certificates import OrganisationCertificate

_SIGNED = f"""<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway">
<sr:Header>{{extra}}</sr:Header>
<ds:Signature xmlns:ds="{DS_NS}"><ds:SignedInfo>
<ds:CanonicalizationMethod Algorithm="{C14N}"/>
<ds:SignatureMethod Algorithm="{ECDSA_SHA256}"/>
<ds:Reference URI=""><ds:Transforms><ds:Transform Algorithm="{ENVELOPED}"/></ds:Transforms>
<ds:DigestMethod Algorithm="{SHA256}"/><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference>
</ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue>
<ds:KeyInfo><ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>CN=Z1,OU=07</ds:X509IssuerName>
<ds:X509SerialNumber>{{serial}}</ds:X509SerialNumber></ds:X509IssuerSerial></ds:X509Data>
</ds:KeyInfo></ds:Signature></sr:Request>"""


def _any_certificate(wanted: IssuerSerial) -> OrganisationCertificate:
    # The checks under test fail before the certificate is used.
    return cast(OrganisationCertificate, object())


def test_relative_namespace_uri_is_a_malformed_signature_not_a_c14n_error() -> None:
    root = etree.fromstring(_SIGNED.format(extra='<x xmlns="relative/uri"/>', serial="1").encode())
    with pytest.raises(MalformedSignature, match="canonicalised"):
        verify_enveloped(root, _any_certificate)


@pytest.mark.parametrize("serial", ["\u00b2", "12\u00b3"])
def test_non_ascii_digits_in_the_serial_number_are_malformed(serial: str) -> None:
    root = etree.fromstring(_SIGNED.format(extra="", serial=serial).encode())
    with pytest.raises(MalformedSignature, match="decimal integer"):
        verify_enveloped(root, _any_certificate)


@pytest.mark.parametrize("counter", ["\u00b2", "1\u0663"])
def test_request_id_counter_must_be_ascii_digits(counter: str) -> None:
    with pytest.raises(RequestIdError, match="decimal digits"):
        RequestId.parse(f"90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A0:{counter}")
