import Supervision

await MultiAPIServer.runAsMain()
