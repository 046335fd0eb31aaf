import Toolbox

await TandemCommand.runMain()
