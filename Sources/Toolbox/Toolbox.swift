// Toolbox
