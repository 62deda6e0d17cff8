"""The PLD operator panel: a Qt widget over the stack's episode and safety services.

``model`` (pure state reduction) and ``store_stats`` are free of Qt and ROS; ``ros_bridge`` is
the rclpy side, ``widget`` the Qt side, ``app`` / ``rqt_plugin`` the two shells.
"""
