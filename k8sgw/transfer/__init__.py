"""Zone transfer: k8sgw as a hidden primary for real secondaries (NSD, Knot, BIND).

    RecordStore ──publish──▶ ZoneFeed (one task per transferred zone, process-wide)
                                │  ZoneCopy: every RR of the zone as wire bytes, per record-map version
                                │  Journal: the differences between recent serials
                                ├──▶ AXFR / IXFR replies over TCP (outbound.py)
                                └──▶ NOTIFY to the configured secondaries (notify.py)

A feed outlives the generation that started it: a reload that keeps a zone keeps its journal,
and points the feed at the new generation's store once that one serves.
"""
