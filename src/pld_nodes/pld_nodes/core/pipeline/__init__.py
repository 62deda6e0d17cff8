"""The whole PLD loop on the sim: Probe/Learn → Collect → Distill → Evaluate (+ report).

ROS-free orchestration; how episodes are collected (through the ROS graph, or in this process)
is a :class:`~pld_nodes.core.pipeline.collect.Collector` the caller passes in.
"""
