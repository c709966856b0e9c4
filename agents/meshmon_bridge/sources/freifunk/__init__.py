"""Freifunk sources of meshmon-bridge: respondd (Gluon nodes, as yanic asks them) and the
community map files (yanic's meshviewer.json, hopglass nodes.json + graph.json,
OpenWiFiMap rows). They share the public node id rule (`node_ids`) and the conversion of a
map snapshot into node updates (`snapshot`). See docs/freifunk.md.
"""
