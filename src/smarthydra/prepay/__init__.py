"""Prepayment: IEC 62055-41 (STS) tokens and the meter-side token decoder.

- :mod:`.sts_algorithms`: EA07 (STA), EA11 (MISTY1), DKGA-02 and DKGA-04;
- :mod:`.sts_tokens`: the token classes, CRC, transfer amount, TID and the 20 digits;
- :mod:`.sts_vending`: a vending server whose vending key may live in a PKCS#11 HSM;
- :mod:`.sts_meter`: the pure redemption rules (TID anti-replay, key change, rollover);
- :mod:`.sts_applet`: the same rules in a secure-element applet with tear-safe state.

GB top-ups: the UTRN itself (PTUT, check digit, MAC, anti-replay cache) is a GBCS matter in
:mod:`smarthydra.gbcs.utrn`; :mod:`.gb_topup` is the supplier's side (vending with the
prepayment top-up key in an HSM, DUIS SRV 2.2, reading the meter's answer).
"""
