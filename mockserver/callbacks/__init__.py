"""Callbacks (webhooks): the fake delivers a task's callbacks on its clock.

    plan        when a task's callbacks are due: the events the contract (and the request) ask
                for, at the scenario time the task reaches each, shifted or spoiled as its
                scenario scripts (lost, duplicate, late, early, a bad signature)
    policy      where deliveries may go (loopback, and `--callback-allow` hosts and networks)
    sender      one HTTP attempt: signed the Standard Webhooks way, no redirects, a bounded
                read, TLS trusting `--callback-ca`
    dispatcher  the loop that claims due deliveries from the store, attempts them (at most
                `--callback-concurrency` at once), retries on the contract's schedule and
                records every attempt (the journal, `GET /__admin/callbacks`)

Deliveries are facts in the store, like polls: a shared store leases each one to a single
replica, and gives it back if that replica dies. Nothing here runs on the request path: a submit
only adds the task's deliveries to the store.
"""

from mockserver.callbacks.dispatcher import Dispatcher
from mockserver.callbacks.plan import plan

__all__ = ["Dispatcher", "plan"]
