"""The add-on's own page (Home Assistant Ingress, or ``photosorter web``): review, teach, browse, map, health.

An adapter like MQTT or email: ``app`` serves HTTP (aiohttp) with thin handlers in ``views``; every change
goes through ``desk`` to the labelling the CLI and email use, one at a time on the sorter's thread; what
the page reads comes from its own connection to the state file. Templates and static files ship in the
package: no build step, nothing from elsewhere, so the page works offline.
"""
