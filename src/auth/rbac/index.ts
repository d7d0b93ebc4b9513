export { RbacAuthorizer } from './authorizer.js';
export { RbacStore, ADMIN_ROLE, PUBLIC_ROLE, BUILTIN_ROLES, validateRbacName, type Grant, type RbacBackup } from './store.js';
export {
  ANY,
  ALL_PRIVILEGES,
  BUILTIN_GROUPS,
  METHOD_RULES,
  PRIVILEGE_LEVELS,
  builtinGroupLevel,
  isBuiltinGroup,
  isPrivilege,
  objectTypeOfLevel,
  requestDb,
  type Check,
  type MethodRule,
  type ObjectResolver,
  type ObjectType,
  type PrivilegeLevel,
} from './privileges.js';
