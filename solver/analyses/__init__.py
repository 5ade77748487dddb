"""Sensitivity-ranked plans: every analysis here is a set of re-solves of the core model, each
compared with the others only within the band their MIP gaps allow."""
