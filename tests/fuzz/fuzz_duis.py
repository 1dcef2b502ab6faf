"""atheris harness: DUIS XML (request reading, schema validation, XMLDSig) and RequestIDs.

Run: ``python -m tests.fuzz.fuzz_duis -runs=100000`` (from the repository root).
"""

from __future__ import annotations

import sys

from tests.fuzz.harness import Target, digits_of, main, splice, text_of

INSTRUMENT = ("smarthydra.duis",)


def targets() -> list[Target]:
    from smarthydra.dcc.gateway import default_schema_dir
    from smarthydra.duis.request import CommandVariant, RequestId, RequestIdError
    from smarthydra.duis.xml import (
        DuisSchema,
        DuisXmlError,
        MalformedXml,
        SchemaNotFound,
        build_request,
        parse_xml,
        read_request,
        read_response,
    )
    from smarthydra.duis.xmldsig import XmlSignatureError, repository_lookup, verify_enveloped
    from smarthydra.sim.gateway import provision_xml_signing
    from smarthydra.sim.world import build_world

    world = build_world(homes=1, seed=7)
    signer = provision_xml_signing(world).users[world.supplier.eui]
    lookup = repository_lookup(world.repository, world.clock)
    try:
        schema: DuisSchema | None = DuisSchema.load(default_schema_dir())
    except SchemaNotFound:  # the conformance data is absent: fuzz the rest
        schema = None
    request_id = RequestId(world.supplier.eui, world.home(0).esme.eui, 0x1000)
    signed = signer.sign_bytes(build_request(
        request_id, CommandVariant.NON_CRITICAL_TO_DEVICE, "4.1.1",
        {"ExecutionDateTime": "2026-02-01T00:00:00Z"},
    ))

    def request(document: bytes) -> None:
        root = parse_xml(document)
        read_request(root)

    def validated_request(document: bytes) -> None:
        root = parse_xml(document)
        if schema is not None:
            schema.validate(root)
        read_request(root)

    def response(document: bytes) -> None:
        read_response(parse_xml(document))

    def signature(document: bytes) -> None:
        try:
            root = parse_xml(document)
        except MalformedXml:
            return
        verify_enveloped(root, lookup)

    return [
        Target("read_request", request, (DuisXmlError,), unspecific=(DuisXmlError,)),
        Target("read_request (spliced)", lambda b: request(splice(signed, b)), (DuisXmlError,),
               unspecific=(DuisXmlError,)),
        Target("schema + read_request (spliced)", lambda b: validated_request(splice(signed, b)),
               (DuisXmlError,), unspecific=(DuisXmlError,)),
        Target("read_response (spliced)", lambda b: response(splice(signed, b)), (DuisXmlError,),
               unspecific=(DuisXmlError,)),
        Target("verify_enveloped", signature, (XmlSignatureError,),
               unspecific=(XmlSignatureError,)),
        Target("verify_enveloped (spliced)", lambda b: signature(splice(signed, b)),
               (XmlSignatureError,), unspecific=(XmlSignatureError,)),
        Target("RequestId.parse", lambda b: RequestId.parse(text_of(b)), (RequestIdError,)),
        Target("RequestId.parse (counter)",
               lambda b: RequestId.parse(f"{request_id.originator}:{request_id.target}:"
                                         f"{digits_of(b, len(b))}"), (RequestIdError,)),
        Target("RequestId.parse (spliced)",
               lambda b: RequestId.parse(text_of(splice(str(request_id).encode(), b))),
               (RequestIdError,)),
    ]


if __name__ == "__main__":
    main(sys.modules[__name__])
