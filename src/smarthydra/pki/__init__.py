"""SMKI: organisation, device and CA certificates issued from keys held in a Keystore."""

from smarthydra.pki import profile
from smarthydra.pki.certificates import (
    AnyCertificate,
    CaCertificate,
    CertificateError,
    DeviceCertificate,
    OrganisationCertificate,
    SmkiCertificate,
    load_pem_bundle,
    parse_certificate,
)
from smarthydra.pki.issue import (
    CertificateSigner,
    IssuanceError,
    ca_name,
    key_identifier,
    organisation_name,
    random_serial,
)
from smarthydra.pki.profile import SmkiRole

__all__ = [
    "AnyCertificate",
    "CaCertificate",
    "CertificateError",
    "CertificateSigner",
    "DeviceCertificate",
    "IssuanceError",
    "OrganisationCertificate",
    "SmkiCertificate",
    "SmkiRole",
    "ca_name",
    "key_identifier",
    "load_pem_bundle",
    "organisation_name",
    "parse_certificate",
    "profile",
    "random_serial",
]
