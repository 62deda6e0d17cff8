"""Helpers shared by the node adapters: QoS profiles, message conversions, parameter binding."""
