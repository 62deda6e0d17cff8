"""PLD stage 1 (Probe/Learn): the residual actor, SAC/RLPD/Cal-QL learner, replay and rollouts."""
