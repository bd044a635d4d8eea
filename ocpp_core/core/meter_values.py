"""Meter values (OCPP 1.6 sections 3.16, 4.7, 9.1): when samples are taken, and
the MeterValues message.

- Periodic samples every MeterValueSampleInterval from the transaction's start,
  stamped at their exact slot (MeterValuesSampledData).
- Clock-aligned samples on the dot of ClockAlignedDataInterval from midnight UTC,
  also outside transactions, skipped while the clock is unknown
  (MeterValuesAlignedData).
- Samples kept for StopTransaction's transactionData: Transaction.Begin, the
  periodic and clock-aligned samples of StopTxnSampledData / StopTxnAlignedData,
  and Transaction.End.

What a sample contains is ocpp_core/metering.py's (sampled_values); the journal
queues and sends the messages.
"""

from ocpp_core.metering import next_aligned, sampled_values


class MeterSampling:
    def __init__(self, cp):
        self.cp = cp
        self._next_aligned = None       # epoch of the next clock-aligned sample
        cp.events.listen("config", self._config_changed)

    def values(self, c, measurands, context):
        if c.sample is None:
            return []
        profile = self.cp.profile
        return sampled_values(c.sample, measurands, context, phases=profile.phases,
                              offered_current_a=c.offered_a,
                              nominal_voltage_v=profile.nominal_voltage_v)

    def stop_entry(self, c, context, stamp=None):
        """A transactionData entry of StopTxnSampledData, or None."""
        measurands = self.cp.config.get("StopTxnSampledData")
        if not measurands or c.sample is None:
            return None
        values = self.values(c, measurands, context)
        if not values:
            return None
        return {"at": stamp or self.cp.clock.stamp(), "sampledValue": values}

    def transaction_started(self, c):
        interval = self.cp.config.get("MeterValueSampleInterval")
        c.next_sample_due = self.cp.clock.monotonic() + interval if interval > 0 else None

    def trigger(self, c):
        """TriggerMessage(MeterValues): c's latest reading of MeterValuesSampledData
        with context Trigger, queued like any MeterValues (after c's transaction
        messages, with its transactionId). False when there is nothing to send."""
        values = self.values(c, self.cp.config.get("MeterValuesSampledData"), "Trigger")
        if not values:
            return False
        self.cp.journal.queue_meter_values(c.tx_key, c.id,
                                           [{"at": self.cp.clock.stamp(), "sampledValue": values}])
        return True

    def can_trigger(self, c):
        return bool(self.values(c, self.cp.config.get("MeterValuesSampledData"), "Trigger"))

    def tick(self, now_mono):
        """Take what is due; seconds until the next sample, or None."""
        waits = [w for w in (self._periodic(now_mono), self._aligned(now_mono)) if w is not None]
        return min(waits) if waits else None

    def _periodic(self, now):
        cp = self.cp
        interval = cp.config.get("MeterValueSampleInterval")
        next_due = None
        for c in cp.connectors.values():
            if not c.in_transaction or c.next_sample_due is None:
                continue
            if interval <= 0:
                c.next_sample_due = None
                continue
            while now >= c.next_sample_due:
                stamp = cp.clock.stamp_at(c.next_sample_due)
                values = self.values(c, cp.config.get("MeterValuesSampledData"),
                                     "Sample.Periodic")
                if values:
                    cp.journal.queue_meter_values(c.tx_key, c.id,
                                                  [{"at": stamp, "sampledValue": values}])
                entry = self.stop_entry(c, "Sample.Periodic", stamp)
                if entry is not None:
                    cp.journal.add_stop_sample(c.tx_key, entry)
                c.next_sample_due += interval
            wait = c.next_sample_due - now
            next_due = wait if next_due is None else min(next_due, wait)
        return next_due

    def _aligned(self, now_mono):
        clock = self.cp.clock
        interval = self.cp.config.get("ClockAlignedDataInterval")
        if interval <= 0 or not clock.valid:
            self._next_aligned = None
            return None
        now = clock.now()
        if self._next_aligned is None:
            self._next_aligned = next_aligned(now, interval)
        if now >= self._next_aligned:
            slot = self._next_aligned
            self._next_aligned = next_aligned(now, interval)
            if now - slot < interval:     # a slot missed by far (clock jump) is skipped
                stamp = clock.stamp_at(now_mono - (now - slot))
                stamp["w"] = slot
                self._take_aligned(stamp)
        return max(0.0, self._next_aligned - clock.now())

    def _take_aligned(self, stamp):
        cp = self.cp
        measurands = cp.config.get("MeterValuesAlignedData")
        stop_measurands = cp.config.get("StopTxnAlignedData")
        for c in cp.connectors.values():
            if measurands:
                values = self.values(c, measurands, "Sample.Clock")
                if values:
                    cp.journal.queue_meter_values(c.tx_key, c.id,
                                                  [{"at": stamp, "sampledValue": values}])
            if stop_measurands and c.in_transaction:
                values = self.values(c, stop_measurands, "Sample.Clock")
                if values:
                    cp.journal.add_stop_sample(c.tx_key, {"at": stamp, "sampledValue": values})

    def _config_changed(self, key, value):
        if key == "MeterValueSampleInterval":     # re-armed from now
            now = self.cp.clock.monotonic()
            for c in self.cp.connectors.values():
                if c.in_transaction:
                    c.next_sample_due = now + value if value > 0 else None
        elif key == "ClockAlignedDataInterval":
            self._next_aligned = None


class MeterValues:
    """MeterValues.req from a queued entry: the connector, the samples with their
    stamps resolved now, and the transactionId once the transaction has one."""
    action = "MeterValues"

    def __init__(self, cp=None):
        self.cp = cp

    def build(self, rec, entry, resolve):
        payload = {"connectorId": entry["connector_id"],
                   "meterValue": [{"timestamp": resolve(e["at"]),
                                   "sampledValue": e["sampledValue"]}
                                  for e in entry["meter_value"]]}
        if rec is not None:
            payload["transactionId"] = rec["transaction_id"]
        return payload

    def confirmed(self, rec, conf):
        pass    # MeterValues.conf carries nothing
