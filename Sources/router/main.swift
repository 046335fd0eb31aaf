import Routing

await RouterCommand.runAsMain()
