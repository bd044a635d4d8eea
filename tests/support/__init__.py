"""What the tests share: the in-process harness on a virtual clock
(core_harness), the CSMS built on the `ocpp` package (ocpp_csms), the firmware
as a subprocess and the bench socket (firmware_process), device test helpers
(device_fixtures) and the journal crash worker."""
