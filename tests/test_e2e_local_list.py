"""Local Auth List Management end to end: `python -m firmware --hal mock` as a
subprocess against the `ocpp`-package CSMS. The CSMS sends a Full
SendLocalList, then goes away (connections dropped and refused); offline, a
Blocked listed card is refused (although AllowOfflineTxForUnknownId is true:
the list knows it) and a listed Accepted card charges. When the CSMS is back,
the offline transaction is delivered with the listed card's idTag.

Absence ("nothing started") is proven against a later positive event the
firmware had to process first, never by waiting a while."""

from tests.support.firmware_process import Bench, bench_port_of

GOOD = "04A1B2C3"
BLOCKED = "0BADCAFE"


def test_full_list_then_offline_charging_with_listed_cards(ocpp_csms, firmware):
    fw = firmware(ocpp_csms.url)
    ocpp_csms.wait_for("BootNotification")
    bench = Bench(bench_port_of(fw))
    bench.wait(lambda s: s["ocpp"]["registration"] == "Accepted", what="Accepted")
    assert ocpp_csms.call("CP-TEST-1", "ChangeConfiguration",
                          {"key": "MinimumStatusDuration", "value": "0"}) == {"status": "Accepted"}
    conf = ocpp_csms.call("CP-TEST-1", "GetConfiguration",
                          {"key": ["SupportedFeatureProfiles", "AllowOfflineTxForUnknownId"]})
    values = {k["key"]: k["value"] for k in conf["configurationKey"]}
    assert "LocalAuthListManagement" in values["SupportedFeatureProfiles"].split(",")
    assert values["AllowOfflineTxForUnknownId"] == "true"
    assert ocpp_csms.call("CP-TEST-1", "GetLocalListVersion", {}) == {"listVersion": 0}
    answer = ocpp_csms.call("CP-TEST-1", "SendLocalList", {
        "listVersion": 1, "updateType": "Full",
        "localAuthorizationList": [
            {"idTag": GOOD, "idTagInfo": {"status": "Accepted"}},
            {"idTag": BLOCKED, "idTagInfo": {"status": "Blocked"}}]})
    assert answer == {"status": "Accepted"}
    assert ocpp_csms.call("CP-TEST-1", "GetLocalListVersion", {}) == {"listVersion": 1}

    # the CSMS goes away
    ocpp_csms.refuse_connections = True
    ocpp_csms.drop_connections()
    bench.wait(lambda s: not s["ocpp"]["connected"], what="offline")
    before = len(ocpp_csms.actions())

    bench("plug", connector=1)
    bench.wait(lambda s: s["connectors"]["1"]["ev_state"] == "B", what="EV plugged")
    bench("tap", uid=BLOCKED)
    fw.wait_log("card %s not authorized (Blocked)" % BLOCKED)
    s = bench.status()["connectors"]["1"]
    assert s["contactor"] is False, "a Blocked listed card is refused offline"
    bench("tap", uid=GOOD)
    bench.wait(lambda s: s["connectors"]["1"]["contactor"] is True, what="charging offline")
    assert len(ocpp_csms.actions()) == before, "nothing reached the CSMS while it was away"

    # the CSMS is back: the offline transaction is delivered with the listed card
    ocpp_csms.refuse_connections = False
    start = ocpp_csms.wait_for("StartTransaction", timeout=90)
    assert start["idTag"] == GOOD and start["connectorId"] == 1
    assert ocpp_csms.call("CP-TEST-1", "GetLocalListVersion", {}) == {"listVersion": 1}
