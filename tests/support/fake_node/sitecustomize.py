"""Makes a process believe it runs on another machine, named by HARNESS_TEST_NODE.

Put on PYTHONPATH of the processes that stand for a cluster node (a Ray node started by a
test, or a submitit job: SUBMITIT_EXECUTOR is set only in the job), so a test can tell
where the machine id of a run was read: on the node, or on the submitting host.
"""

import os
import platform
import socket

_node = os.environ.get("HARNESS_TEST_NODE")
if _node and (os.environ.get("HARNESS_TEST_NODE_IS_RAY") or os.environ.get("SUBMITIT_EXECUTOR")):
    socket.gethostname = lambda: _node
    platform.node = lambda: _node
