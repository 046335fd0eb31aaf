import Toolbox

TandemCommand.main()
