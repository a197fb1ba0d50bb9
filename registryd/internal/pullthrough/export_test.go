package pullthrough

// WarmConnections is warmConnections, for the tests outside the package.
const WarmConnections = warmConnections
