import Testing
import FleetPlanning

@Test func fleetplanningBuilds() {}
