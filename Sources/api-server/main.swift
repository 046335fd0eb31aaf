import Serving

await APIServer.runAsMain()
