"""One model request as one machine: the request side, the pool's ``Exchange`` and the response
translator composed, with the commit point, stream outcomes, buffering and forced endings.

This module is the public API of ``kiro_protocol.call``; its modules are private.
"""

from ._model_call import SHUTDOWN_MESSAGE, Answer, CallIds, CallSetup, ClientOutput, ModelCall

__all__ = ["ModelCall", "CallSetup", "CallIds", "Answer", "ClientOutput", "SHUTDOWN_MESSAGE"]
