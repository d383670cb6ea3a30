/** preValidation for bodies made only of optional fields: a request without a body means `{}`. */
export const emptyBodyIsObject = async (request: { body: unknown }): Promise<void> => {
  request.body ??= {}
}
